"""Building blocks shared by the models, with PyTorch/mmcv numerics, one concept per module.

* ``resize``: bilinear/bicubic resizing and adaptive average pooling (PyTorch's index rules);
* ``matmul``: batched matmul and ``Linear`` (2-D products, so that oneDNN runs them on the CPU);
* ``conv``: ``conv2d`` and mmcv's ``ConvModule``;
* ``norm``: BatchNorm/SyncBN, LayerNorm, GroupNorm and ``build_norm_layer`` (mmcv's ``norm_cfg``);
* ``activation``: GELU, ReLU, ``build_activation`` (mmcv's ``act_cfg``), ``softmax``;
* ``dropout``: Dropout, Dropout2d, DropPath;
* ``init``: the weight initialisers the official code uses;
* ``precision``: float32 islands under mixed precision (``float32_region``, ``to_float32``).

Every module class here carries its own operation-count rule (``count_macs``, read by
``jseg.analysis``); a model built from these layers only adds rules for its own modules.
"""
from .activation import GELU, ReLU, build_activation, softmax
from .conv import ConvModule, conv2d
from .dropout import DropPath, Dropout, Dropout2d
from .init import constant_init_, fan_out_normal_init_, normal_init_
from .matmul import Linear, bmm, bmm_nt
from .norm import BatchNorm2d, GroupNorm, LayerNorm, build_norm_layer, centered_variance
from .resize import adaptive_avg_pool2d, adaptive_avg_pool2d_onnx, bicubic_resize, resize
from .counting import no_own_macs, numel
from .precision import float32_region, to_float32

__all__ = ["GELU", "ReLU", "build_activation", "softmax", "ConvModule", "conv2d", "DropPath", "Dropout", "Dropout2d",
           "constant_init_", "fan_out_normal_init_", "normal_init_", "Linear", "bmm", "bmm_nt", "BatchNorm2d", "GroupNorm",
           "LayerNorm", "build_norm_layer", "centered_variance", "adaptive_avg_pool2d", "adaptive_avg_pool2d_onnx",
           "bicubic_resize", "resize",
           "no_own_macs", "numel", "float32_region", "to_float32"]
