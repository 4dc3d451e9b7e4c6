from torch import nn

LOWERINGS = {
    "relu": lambda node: nn.ReLU(inplace="inplace" in node.hints),  # the relu_inplace pass
    "leaky_relu": lambda node: nn.LeakyReLU(node.params.negative_slope),
    "gelu": lambda node: nn.GELU(approximate=node.params.approximate),
    "tanh": lambda node: nn.Tanh(),
    "sigmoid": lambda node: nn.Sigmoid(),
    "silu": lambda node: nn.SiLU(),
    "relu6": lambda node: nn.ReLU6(),
    "hardsigmoid": lambda node: nn.Hardsigmoid(),
    "hardswish": lambda node: nn.Hardswish(),
    "elu": lambda node: nn.ELU(node.params.alpha),
    "softplus": lambda node: nn.Softplus(node.params.beta, node.params.threshold),
    "prelu": lambda node: nn.PReLU(node.params.num_parameters, init=node.params.init),
    "softmax": lambda node: nn.Softmax(dim=node.params.dim),
    "log_softmax": lambda node: nn.LogSoftmax(dim=node.params.dim),
}
