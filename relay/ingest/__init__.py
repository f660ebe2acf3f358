"""The ingest stage: ``POST /callbacks/callfire`` from the request to the durable write.

- ``handler``: the aiohttp route (the one way in), answers and metrics;
- ``parsing``: the callback's body, pure;
- ``signature``: which configured secret signed it;
- ``limiter`` and ``clients``: failures counted per client address, behind trusted proxies;
- ``writer``: the durable write, concurrent callbacks batched into shared script calls.
"""
