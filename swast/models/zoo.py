"""Built-in models. Every builder takes the dataset's class count and input shape, so grey or colour
images of any size work without the user editing the architecture."""

from __future__ import annotations

import torchvision
from torch import nn

from swast.registry import models


@models.register("small_cnn")
def small_cnn(num_classes: int, input_shape: tuple[int, ...], width: int = 32) -> nn.Module:
    """Three conv-BN-ReLU blocks, global pooling and an FC layer: the CPU-sized default."""
    channels = input_shape[0]

    def block(c_in: int, c_out: int) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]

    return nn.Sequential(
        *block(channels, width),
        *block(width, 2 * width),
        nn.MaxPool2d(2),
        *block(2 * width, 4 * width),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4 * width, num_classes),
    )


def _resnet(depth: int, num_classes: int, input_shape: tuple[int, ...], cifar_stem: bool | None) -> nn.Module:
    net = {18: torchvision.models.resnet18, 101: torchvision.models.resnet101}[depth](weights=None, num_classes=num_classes)
    channels, height = input_shape[0], input_shape[1] if len(input_shape) > 1 else 224
    small_input = height <= 64 if cifar_stem is None else cifar_stem
    if small_input:
        # CIFAR-style stem: a 3x3 stride-1 first conv and no max-pool keep 32x32 inputs from collapsing to 1x1.
        net.conv1 = nn.Conv2d(channels, 64, 3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
    elif channels != 3:
        net.conv1 = nn.Conv2d(channels, 64, 7, stride=2, padding=3, bias=False)
    return net


@models.register("resnet18")
def resnet18(num_classes: int, input_shape: tuple[int, ...], cifar_stem: bool | None = None) -> nn.Module:
    """torchvision ResNet-18; CIFAR-style stem for inputs up to 64 px (cifar_stem=true/false forces it)."""
    return _resnet(18, num_classes, input_shape, cifar_stem)


@models.register("resnet101")
def resnet101(num_classes: int, input_shape: tuple[int, ...], cifar_stem: bool | None = None) -> nn.Module:
    """torchvision ResNet-101; CIFAR-style stem for inputs up to 64 px (cifar_stem=true/false forces it)."""
    return _resnet(101, num_classes, input_shape, cifar_stem)
