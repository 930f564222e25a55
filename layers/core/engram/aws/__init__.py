"""The AWS profile: settings from the Lambda environment, the factory that wires the
AWS adapters into the shared services, and what the Lambda handlers in functions/ call.

Nothing here runs in `engram serve`; nothing in services/ imports from here.
"""
