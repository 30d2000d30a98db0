"""gRPC servicer of the review service: proto <-> domain, nothing else."""

from __future__ import annotations

from tandem.review.v1 import review_pb2_grpc

from services.common.grpcserver import Resources


class ReviewServiceServicer(review_pb2_grpc.ReviewServiceServicer):
    """RPCs not yet built answer UNIMPLEMENTED (the generated base class)."""

    def __init__(self, res: Resources) -> None:
        self._res = res
