from torch import nn

from dsl import Node


def embedding(node: Node) -> nn.Module:
    p = node.params
    return nn.Embedding(p.num_embeddings, p.embedding_dim, padding_idx=p.padding_idx, sparse=p.sparse)


LOWERINGS = {"embedding": embedding}
