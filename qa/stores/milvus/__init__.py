"""The Milvus backend: the same store in Milvus Lite (a file or a local server) or a Milvus cluster."""
from qa.stores.milvus.client import MilvusLocation
from qa.stores.milvus.store import MilvusStore, milvus_version
from qa.stores.milvus.update import MilvusUpdate

__all__ = ["MilvusLocation", "MilvusStore", "MilvusUpdate", "milvus_version"]
