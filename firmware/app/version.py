# The app's version: replaced by a firmware update package (firmware/README.md "Packages").
VERSION = "1.0.0"
