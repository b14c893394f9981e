"""The playground: a web page at `/playground` that drives the public API (`/v1/...`)."""
