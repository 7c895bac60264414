"""Federated sources: values the hub does not store, read from other databases and APIs on demand.

config      what a source is (kind, target, indicators, policy), as ``hub/config/sources.py`` builds it
connectors  the registry of kinds: each kind's keys, their parser and its connector, declared once
postgres, http_json, remote_graphql
            the three connectors; each checks its own keys and turns one Question into validated SourceValues
values      reading and validating answers (exact decimals, SDMX periods, nothing coerced)
transport   one streamed, size-limited HTTP exchange
decoding    its Content-Encoding undone step by step, capped in decoded size and in ratio (no gzip bomb)
breaker, cache, health
            the circuit breaker, the TTL cache (stale values while down), the ``sources`` report
source      a connector under its policy: cache, batching into questions, timeout, retries
registry    the process's sources, opened and closed by the app's lifespan
loaders     per-request DataLoaders, one per source, with the authorization guard
reads       table, series, observations and point lookups answered from sources
"""
