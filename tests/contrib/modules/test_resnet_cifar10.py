import unittest
from contextlib import redirect_stdout
from io import StringIO

import torch
import torch.nn.functional as F

from metal.contrib.modules import resnet_cifar10 as resnet
from metal.contrib.modules.resnet_cifar10 import BasicBlock, Bottleneck, ResNetModule


class BlockTest(unittest.TestCase):
    def test_basic_block_shapes(self):
        x = torch.randn(2, 8, 16, 16)
        same = BasicBlock(8, 8)
        self.assertEqual(len(same.shortcut), 0)  # identity shortcut
        self.assertEqual(tuple(same(x).shape), (2, 8, 16, 16))
        down = BasicBlock(8, 16, stride=2)
        self.assertEqual(len(down.shortcut), 2)  # 1x1 conv + BN
        self.assertEqual(tuple(down(x).shape), (2, 16, 8, 8))
        self.assertGreaterEqual(down(x).min().item(), 0.0)  # ends with ReLU
        self.assertEqual(BasicBlock.expansion, 1)

    def test_bottleneck_shapes(self):
        x = torch.randn(2, 16, 8, 8)
        block = Bottleneck(16, 4)
        self.assertEqual(len(block.shortcut), 0)
        self.assertEqual(tuple(block(x).shape), (2, 16, 8, 8))
        down = Bottleneck(16, 8, stride=2)
        self.assertEqual(tuple(down(x).shape), (2, 32, 4, 4))
        self.assertEqual(Bottleneck.expansion, 4)


class ResNetTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.threads = torch.get_num_threads()
        torch.set_num_threads(2)

    @classmethod
    def tearDownClass(cls):
        torch.set_num_threads(cls.threads)

    def test_resnet18_output_and_training_steps(self):
        torch.manual_seed(0)
        net = resnet.ResNet18()
        # The well-known size of the CIFAR ResNet-18.
        self.assertEqual(sum(p.numel() for p in net.parameters()), 11173962)
        x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
        optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
        losses = []
        for _ in range(3):
            optimizer.zero_grad()
            logits = net(x)
            self.assertEqual(tuple(logits.shape), (4, 10))
            loss = F.cross_entropy(logits, y)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        self.assertLess(losses[-1], losses[0])

    def test_factories(self):
        expected = {
            resnet.ResNet18: (BasicBlock, [2, 2, 2, 2]),
            resnet.ResNet34: (BasicBlock, [3, 4, 6, 3]),
            resnet.ResNet50: (Bottleneck, [3, 4, 6, 3]),
            resnet.ResNet101: (Bottleneck, [3, 4, 23, 3]),
            resnet.ResNet152: (Bottleneck, [3, 8, 36, 3]),
        }
        for factory, (block, counts) in expected.items():
            net = factory()
            stages = [net.layer1, net.layer2, net.layer3, net.layer4]
            self.assertEqual([len(stage) for stage in stages], counts)
            self.assertTrue(all(isinstance(b, block) for s in stages for b in s))
            self.assertEqual(net.linear.in_features, 512 * block.expansion)
            self.assertEqual(net.linear.out_features, 10)

    def test_bottleneck_network_output(self):
        net = ResNetModule(Bottleneck, [1, 1, 1, 1], num_classes=3)
        net.eval()
        with torch.no_grad():
            self.assertEqual(tuple(net(torch.randn(2, 3, 32, 32)).shape), (2, 3))

    def test_test_function(self):
        buffer = StringIO()
        with redirect_stdout(buffer):
            size = resnet.test()
        self.assertEqual(tuple(size), (1, 10))
        self.assertIn("torch.Size([1, 10])", buffer.getvalue())

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "num_blocks"):
            ResNetModule(BasicBlock, [2, 2, 2])
        with self.assertRaisesRegex(ValueError, "num_blocks"):
            ResNetModule(BasicBlock, [2, 0, 2, 2])
        with self.assertRaisesRegex(ValueError, "num_classes"):
            ResNetModule(BasicBlock, [1, 1, 1, 1], num_classes=0)
        net = ResNetModule(BasicBlock, [1, 1, 1, 1])
        with self.assertRaisesRegex(ValueError, r"\[batch, 3, 32, 32\]"):
            net(torch.randn(2, 1, 32, 32))


if __name__ == "__main__":
    unittest.main()
