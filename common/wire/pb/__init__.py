"""Generated protobuf and gRPC stubs of proto/semcom/v1 (by common/wire/protogen.py; do not edit)."""
