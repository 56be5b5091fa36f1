# ADE20K as CGRSeg uses it (CG local_configs/_base_/datasets/ade20k.py): the standard 512x512 training
# pipeline; at test time the keep-ratio resize is padded (bottom/right, value 0) to a multiple of 32, which
# EfficientFormerV2 needs, and whole inference crops the padding off before rescaling (mmseg 0.27).
_base_ = './ade20k.py'
img_norm_cfg = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiScaleFlipAug', img_scale=(2048, 512), flip=False, transforms=[
        dict(type='Resize', keep_ratio=True),
        dict(type='RandomFlip'),
        dict(type='Normalize', **img_norm_cfg),
        dict(type='Pad', size_divisor=32, pad_val=0, seg_pad_val=255),
        dict(type='ImageToTensor', keys=['img']),
        dict(type='Collect', keys=['img']),
    ]),
]
data = dict(val=dict(pipeline=test_pipeline), test=dict(pipeline=test_pipeline))
