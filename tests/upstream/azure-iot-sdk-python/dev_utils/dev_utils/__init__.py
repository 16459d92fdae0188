# Copyright (c) Microsoft. All rights reserved.
# Licensed under the MIT license. See LICENSE file in the project root for
# full license information.

from .random_content import get_random_dict, get_random_message, get_random_string  # noqa: F401
from .service_helper import ServiceHelper  # noqa: F401
from .service_helper_sync import ServiceHelperSync  # noqa: F401
