"""A small Swin-style classifier for the tests: patch embedding (conv, permute, LayerNorm), windowed attention
with a relative position bias table and torch.roll shifts, patch merging through strided slices (x[:, 0::2,
1::2]), a LayerNorm head over a channels-last mean. The structure of torchvision's swin_transformer.py, minus the
shifted windows' attention mask and stochastic depth; written compactly, as a test model.
"""

import torch
import torch.nn.functional as F
from torch import nn


class WindowAttention(nn.Module):
    def __init__(self, dim, window, heads, shift):
        super().__init__()
        self.window, self.heads, self.shift = window, heads, shift
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.table = nn.Parameter(torch.randn((2 * window - 1) ** 2, heads) * 0.02)
        coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + window - 1
        self.register_buffer("index", (rel[:, :, 0] * (2 * window - 1) + rel[:, :, 1]).flatten())

    def forward(self, x):  # x: B H W C
        B, H, W, C = x.shape
        ws = self.window
        if self.shift:
            x = torch.roll(x, shifts=(-self.shift, -self.shift), dims=(1, 2))
        x = x.view(B, H // ws, ws, W // ws, ws, C).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws * ws, C)
        qkv = self.qkv(x).reshape(x.size(0), ws * ws, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q * (C // self.heads) ** -0.5) @ k.transpose(-2, -1)
        bias = self.table[self.index].view(ws * ws, ws * ws, -1).permute(2, 0, 1).unsqueeze(0)
        attn = F.softmax(attn + bias, dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(-1, ws * ws, C)
        x = self.proj(x).view(B, H // ws, W // ws, ws, ws, C).permute(0, 1, 3, 2, 4, 5).reshape(B, H, W, C)
        if self.shift:
            x = torch.roll(x, shifts=(self.shift, self.shift), dims=(1, 2))
        return x


class Block(nn.Module):
    def __init__(self, dim, window, heads, shift):
        super().__init__()
        self.n1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window, heads, shift)
        self.n2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x):
        x = x + self.attn(self.n1(x))
        return x + self.mlp(self.n2(x))


class Merge(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.red = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x):
        x0, x1, x2, x3 = x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]
        return self.red(self.norm(torch.cat([x0, x1, x2, x3], -1)))


class SwinLike(nn.Module):
    def __init__(self, dim=32):
        super().__init__()
        self.embed = nn.Conv2d(3, dim, 4, 4)
        self.ln0 = nn.LayerNorm(dim)
        self.stage1 = nn.Sequential(Block(dim, 4, 2, 0), Block(dim, 4, 2, 2))
        self.merge = Merge(dim)
        self.stage2 = nn.Sequential(Block(2 * dim, 4, 4, 0), Block(2 * dim, 4, 4, 2))
        self.norm = nn.LayerNorm(2 * dim)
        self.head = nn.Linear(2 * dim, 10)

    def forward(self, x):
        x = self.ln0(self.embed(x).permute(0, 2, 3, 1))
        x = self.stage2(self.merge(self.stage1(x)))
        return self.head(self.norm(x).mean((1, 2)))
