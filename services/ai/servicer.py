"""gRPC servicer of the ai service: proto <-> domain, nothing else."""

from __future__ import annotations

from tandem.ai.v1 import ai_pb2_grpc

from services.common.grpcserver import Resources


class AiServiceServicer(ai_pb2_grpc.AiServiceServicer):
    """RPCs not yet built answer UNIMPLEMENTED (the generated base class)."""

    def __init__(self, res: Resources) -> None:
        self._res = res
