# SegFormer model settings shared by all variants (NVlabs local_configs/_base_/models/segformer.py +
# local_configs/segformer/B*/segformer.b*.*.py). Defaults: MiT-B2 backbone with the B2-B5 decoder (E=768).
# Variants: segformer_mit-b{0..5}.py.
norm_cfg = dict(type='SyncBN', requires_grad=True)  # == BN on one process; 'BN' = per-process BN
model = dict(
    type='EncoderDecoder',
    pretrained=None,
    backbone=dict(
        type='MixVisionTransformer',
        embed_dims=[64, 128, 320, 512],
        num_heads=[1, 2, 5, 8],
        mlp_ratios=[4, 4, 4, 4],
        qkv_bias=True,
        depths=[3, 4, 6, 3],
        sr_ratios=[8, 4, 2, 1],
        drop_rate=0.0,
        drop_path_rate=0.1),
    decode_head=dict(
        type='SegFormerHead',
        in_channels=[64, 128, 320, 512],
        in_index=[0, 1, 2, 3],
        feature_strides=[4, 8, 16, 32],
        channels=128,  # only sizes the (unused, officially kept) conv_seg
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        decoder_params=dict(embed_dim=768),
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
