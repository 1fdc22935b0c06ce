"""Developer tooling (generators, loaders, demo, benchmarks). Never imported by services."""
