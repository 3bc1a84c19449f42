"""Who may call the data plane: callers' tokens (as sha256 hashes) and the one table of what each RPC requires.

No grpc here: the transport hands in the method name and the ``authorization`` metadata.
"""

from inference_server.auth._authorizer import Authorizer
from inference_server.auth._policy import POLICY, Access, granted
from inference_server.auth._tokens import Caller, TokenTable, read_tokens_file, watch_tokens_file

__all__ = ["POLICY", "Access", "Authorizer", "Caller", "TokenTable", "granted", "read_tokens_file", "watch_tokens_file"]
