# COCOStuffDataset (paper suppl. Table 1 / fact sheet §5-6): crop 512, global batch 16.
dataset_type = 'COCOStuffDataset'
data_root = 'data/coco_stuff164k'
img_norm_cfg = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
crop_size = (512, 512)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='Resize', img_scale=(2048, 512), ratio_range=(0.5, 2.0)),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='Normalize', **img_norm_cfg),
    dict(type='Pad', size=crop_size, pad_val=0, seg_pad_val=255),
    dict(type='DefaultFormatBundle'),
    dict(type='Collect', keys=['img', 'gt_semantic_seg']),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiScaleFlipAug', img_scale=(2048, 512), flip=False, transforms=[
        dict(type='Resize', keep_ratio=True),
        dict(type='RandomFlip'),
        dict(type='Normalize', **img_norm_cfg),
        dict(type='ImageToTensor', keys=['img']),
        dict(type='Collect', keys=['img']),
    ]),
]
data = dict(
    batch_size=16,  # global batch, split over the processes
    workers_per_gpu=4,
    train=dict(type='RepeatDataset', times=1, dataset=dict(
        type=dataset_type, data_root=data_root, img_dir='images/train2017', ann_dir='annotations/train2017',
        pipeline=train_pipeline)),
    val=dict(type=dataset_type, data_root=data_root, img_dir='images/val2017', ann_dir='annotations/val2017',
             pipeline=test_pipeline),
    test=dict(type=dataset_type, data_root=data_root, img_dir='images/val2017', ann_dir='annotations/val2017',
              pipeline=test_pipeline))
