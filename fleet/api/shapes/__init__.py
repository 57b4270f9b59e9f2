"""Every request and response body of /api/v1 as a pydantic model: checked in, written out, documented.

One module a resource; :mod:`fleet.api.spec` builds the OpenAPI document from these and the routes.
"""
