"""The kit every Tandem process uses: config, logging, metrics, gRPC bootstrap, storage."""
