# Copyright (c) Microsoft Corporation. All rights reserved.
# Licensed under the MIT License. See License.txt in the project root for
# license information.

JSON_CONTENT_TYPE = "application/json"
JSON_CONTENT_ENCODING = "utf-8"

TEST_CONTENT = "testContent"
REPORTED = "reported"
DESIRED = "desired"

# properties of the eventhub message
EVENTHUB_SYSPROP_CONTENT_TYPE = "content-type"
EVENTHUB_SYSPROP_CONTENT_ENCODING = "content-encoding"
EVENTHUB_SYSPROP_DT_DATASCHEMA = "dt-dataschema"
