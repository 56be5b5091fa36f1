# CGRSeg model settings shared by all variants (nizhenliang/CGRSeg local_configs/cgrseg/cgrseg-t_ade20k_160k.py);
# defaults: CGRSeg-T (EfficientFormerV2-S1). Variants: cgrseg_{t,b,l}.py.
norm_cfg = dict(type='SyncBN', requires_grad=True)  # == BN on one process; 'BN' = per-process BN
model = dict(
    type='EncoderDecoder',
    pretrained=None,
    backbone=dict(
        type='EfficientFormerV2',
        layers=[3, 3, 9, 6],
        embed_dims=[32, 48, 120, 224],
        e_ratios='S1',
        vit_num=2,
        resolution=512,
        drop_path_rate=0.0,
        norm_cfg=norm_cfg),  # the official training converts the backbone's BNs to SyncBN (fixtures README)
    decode_head=dict(
        type='CGRSeg',
        in_channels=[48, 120, 224],
        in_index=[1, 2, 3],
        channels=128,
        is_dw=True,
        next_repeat=5,
        mr=2,
        dw_size=11,
        neck_size=11,
        square_kernel_size=3,
        module='RCA',
        ratio=1,
        dropout_ratio=0.1,
        num_classes=150,
        legacy_linear_fuse=False,  # True: checkpoints from before the authors' commit 8ef4bcf
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
