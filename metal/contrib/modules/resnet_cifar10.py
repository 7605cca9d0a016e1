"""Residual networks for CIFAR-10-sized images (He et al., 2015).

Input: images ``[batch, 3, 32, 32]``; output: logits ``[batch, num_classes]``.
A stem 3x3 convolution keeps the 32x32 resolution, four stages of residual
blocks (64, 128, 256 and 512 planes; the last three halve the resolution),
4x4 average pooling and a linear classifier.
"""

from typing import List, Sequence, Type, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from metal._checks import check_positive_int, is_int


def _conv_bn(in_planes: int, planes: int, kernel: int, stride: int) -> List[nn.Module]:
    return [
        nn.Conv2d(
            in_planes,
            planes,
            kernel_size=kernel,
            stride=stride,
            padding=kernel // 2,
            bias=False,
        ),
        nn.BatchNorm2d(planes),
    ]


def _shortcut(in_planes: int, out_planes: int, stride: int) -> nn.Module:
    """Identity when shapes agree, else a strided 1x1 convolution + BN."""
    if stride == 1 and in_planes == out_planes:
        return nn.Sequential()
    return nn.Sequential(*_conv_bn(in_planes, out_planes, 1, stride))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection; ``expansion = 1``.

    ``[batch, in_planes, H, W]`` -> ``[batch, planes, H/stride, W/stride]``.
    """

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1, self.bn1 = _conv_bn(in_planes, planes, 3, stride)
        self.conv2, self.bn2 = _conv_bn(planes, planes, 3, 1)
        self.shortcut = _shortcut(in_planes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (to ``4 * planes``) with a residual
    connection; ``expansion = 4``.

    ``[batch, in_planes, H, W]`` -> ``[batch, 4*planes, H/stride, W/stride]``.
    """

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1, self.bn1 = _conv_bn(in_planes, planes, 1, 1)
        self.conv2, self.bn2 = _conv_bn(planes, planes, 3, stride)
        self.conv3, self.bn3 = _conv_bn(planes, planes * self.expansion, 1, 1)
        self.shortcut = _shortcut(in_planes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


Block = Type[Union[BasicBlock, Bottleneck]]


class ResNetModule(nn.Module):
    """A CIFAR-style ResNet.

    Args:
        block: ``BasicBlock`` or ``Bottleneck``.
        num_blocks: blocks per stage (four stages).
        num_classes: output width.

    Raises:
        ValueError: if ``num_blocks`` does not give four positive counts.
    """

    def __init__(self, block: Block, num_blocks: Sequence[int], num_classes: int = 10):
        super().__init__()
        num_blocks = list(num_blocks)
        if len(num_blocks) != 4 or any(not is_int(b) or b < 1 for b in num_blocks):
            raise ValueError(
                "num_blocks must list four positive block counts (one per stage); "
                f"found {num_blocks!r}."
            )
        num_classes = check_positive_int(num_classes, "num_classes")
        num_blocks = [int(b) for b in num_blocks]
        self.in_planes = 64
        self.conv1, self.bn1 = _conv_bn(3, 64, 3, 1)
        self.layer1 = self._make_layer(block, 64, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(block, 128, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(block, 256, num_blocks[2], stride=2)
        self.layer4 = self._make_layer(block, 512, num_blocks[3], stride=2)
        self.linear = nn.Linear(512 * block.expansion, num_classes)

    def _make_layer(
        self, block: Block, planes: int, num_blocks: int, stride: int
    ) -> nn.Sequential:
        """A stage: the first block uses ``stride``, the others stride 1."""
        blocks = []
        for block_stride in [stride] + [1] * (num_blocks - 1):
            blocks.append(block(self.in_planes, planes, block_stride))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``[batch, 3, 32, 32]`` -> logits ``[batch, num_classes]``."""
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(
                "ResNetModule expects images of shape [batch, 3, 32, 32]; found "
                f"{tuple(getattr(x, 'shape', ()))}."
            )
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.avg_pool2d(out, 4)
        return self.linear(out.flatten(start_dim=1))


def ResNet18() -> ResNetModule:
    """18-layer ResNet (BasicBlock [2, 2, 2, 2] blocks), 10 classes."""
    return ResNetModule(BasicBlock, [2, 2, 2, 2])


def ResNet34() -> ResNetModule:
    """34-layer ResNet (BasicBlock [3, 4, 6, 3] blocks), 10 classes."""
    return ResNetModule(BasicBlock, [3, 4, 6, 3])


def ResNet50() -> ResNetModule:
    """50-layer ResNet (Bottleneck [3, 4, 6, 3] blocks), 10 classes."""
    return ResNetModule(Bottleneck, [3, 4, 6, 3])


def ResNet101() -> ResNetModule:
    """101-layer ResNet (Bottleneck [3, 4, 23, 3] blocks), 10 classes."""
    return ResNetModule(Bottleneck, [3, 4, 23, 3])


def ResNet152() -> ResNetModule:
    """152-layer ResNet (Bottleneck [3, 8, 36, 3] blocks), 10 classes."""
    return ResNetModule(Bottleneck, [3, 8, 36, 3])


def test() -> torch.Size:
    """Run ResNet18 on one random 32x32 image and print the output size."""
    net = ResNet18()
    net.eval()
    with torch.no_grad():
        y = net(torch.randn(1, 3, 32, 32))
    print(y.size())
    return y.size()
