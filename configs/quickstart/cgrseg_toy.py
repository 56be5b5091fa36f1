# Quick start for CGRSeg: a small EfficientFormerV2 + CGRSeg head trained from scratch on the embedded toy
# dataset (generated in data/toy), on a CPU in a few minutes:
#   bash scripts/train.sh configs/quickstart/cgrseg_toy.py
# Data pipeline, schedule and evaluation are those of the SegNeXt quick start (crops of 128, test images
# resized to multiples of 32, as EfficientFormerV2 needs).
_base_ = ['./segnext_toy.py']
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    backbone=dict(
        _delete_=True,
        type='EfficientFormerV2',
        layers=[1, 1, 2, 2],
        embed_dims=[16, 32, 48, 64],
        e_ratios={'0': [4], '1': [4], '2': [4, 4], '3': [4, 4]},
        vit_num=1,
        resolution=128,   # the bias tables' grid: the training crop
        drop_path_rate=0.0,
        attn_key_dim=16, attn_num_heads=4, attn_ratio=2,
        down_key_dim=16, down_num_heads=4, down_attn_ratio=2),
    decode_head=dict(
        _delete_=True,
        type='CGRSeg',
        in_channels=[32, 48, 64],
        in_index=[1, 2, 3],
        channels=64,
        is_dw=True,
        next_repeat=2,
        mr=2,
        dw_size=5,
        neck_size=5,
        square_kernel_size=3,
        module='RCA',
        ratio=1,
        dropout_ratio=0.0,
        num_classes=6,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
optimizer = dict(lr=0.001)
