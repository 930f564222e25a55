"""Imported first by the latency-sensitive functions (API, authorizer), before any model
is defined: pydantic models are built on first use instead of at import
(`defer_build`), so a cold start builds the validators of the models its request uses,
not of all ~200 the routes, events and Powertools define (bench/coldstart.py: ~0.1 s
less CPU for a status request, ~0.05 s for an add). Validation is unchanged: a deferred
model builds itself the first time it validates, serialises or gives its schema."""

from pydantic import BaseModel

BaseModel.model_config["defer_build"] = True
