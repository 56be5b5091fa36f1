# Quick start: a small SegNeXt trained from scratch on the embedded toy dataset (generated in data/toy),
# on a CPU in a few minutes:  bash scripts/train.sh configs/quickstart/segnext_toy.py
_base_ = ['../_base_/models/segnext_mscan.py', '../_base_/datasets/toy.py', '../_base_/default_runtime.py']
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    backbone=dict(embed_dims=[16, 32, 64, 128], depths=[1, 1, 2, 1], drop_path_rate=0.0, norm_cfg=norm_cfg),
    decode_head=dict(in_channels=[32, 64, 128], channels=64, ham_channels=64, ham_kwargs=dict(MD_R=8),
                     num_classes=6, dropout_ratio=0.0))
crop_size = (128, 128)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='Resize', img_scale=(256, 128), ratio_range=(0.5, 2.0)),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='Normalize', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True),
    dict(type='Pad', size=crop_size, pad_val=0, seg_pad_val=255),
    dict(type='DefaultFormatBundle'),
    dict(type='Collect', keys=['img', 'gt_semantic_seg']),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiScaleFlipAug', img_scale=(256, 128), flip=False, transforms=[
        dict(type='Resize', keep_ratio=True),
        dict(type='ResizeToMultiple', size_divisor=32),
        dict(type='RandomFlip'),
        dict(type='Normalize', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True),
        dict(type='ImageToTensor', keys=['img']),
        dict(type='Collect', keys=['img']),
    ]),
]
data = dict(
    batch_size=8,
    workers_per_gpu=2,
    train=dict(dataset=dict(pipeline=train_pipeline)),
    val=dict(pipeline=test_pipeline),
    test=dict(pipeline=test_pipeline))
optimizer = dict(type='AdamW', lr=0.002, betas=(0.9, 0.999), weight_decay=0.01,
                 paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.), 'head': dict(lr_mult=1.)}))
lr_config = dict(policy='poly', warmup='linear', warmup_iters=100, warmup_ratio=1e-3, power=1.0, min_lr=0.0,
                 by_epoch=False)
runner = dict(type='IterBasedRunner', max_iters=2000)
checkpoint_config = dict(interval=500)
evaluation = dict(interval=1000, metric='mIoU')
log_config = dict(interval=100)
