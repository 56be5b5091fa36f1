# Quick start for SegFormer: a small MiT + all-MLP decoder trained from scratch on the embedded toy
# dataset (generated in data/toy), on a CPU in a few minutes:
#   bash scripts/train.sh configs/quickstart/segformer_toy.py
# Data pipeline, schedule and evaluation are those of the SegNeXt quick start.
_base_ = ['./segnext_toy.py']
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    backbone=dict(
        _delete_=True,
        type='MixVisionTransformer',
        embed_dims=[16, 32, 64, 128],
        num_heads=[1, 2, 4, 8],
        mlp_ratios=[4, 4, 4, 4],
        qkv_bias=True,
        depths=[1, 1, 2, 1],
        sr_ratios=[8, 4, 2, 1],
        drop_rate=0.0,
        drop_path_rate=0.0),
    decode_head=dict(
        _delete_=True,
        type='SegFormerHead',
        in_channels=[16, 32, 64, 128],
        in_index=[0, 1, 2, 3],
        feature_strides=[4, 8, 16, 32],
        channels=64,
        dropout_ratio=0.0,
        num_classes=6,
        norm_cfg=norm_cfg,
        align_corners=False,
        decoder_params=dict(embed_dim=64),
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
optimizer = dict(lr=0.001)
