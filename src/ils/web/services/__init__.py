"""The platform API's use cases: what one request does, in its transaction.

Routers stay thin (HTTP in, response model out); these functions write the rows and
queue the jobs with ``session=`` so a failed request leaves nothing behind.
"""
