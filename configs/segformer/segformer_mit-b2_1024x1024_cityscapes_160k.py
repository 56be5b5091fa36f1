# SegFormer-B2, Cityscapes 1024x1024 (NVlabs local_configs/segformer/B2/segformer.b2.1024x1024.city.160k.py).
_base_ = ['../_base_/models/segformer_mit-b2.py', '../_base_/datasets/cityscapes_1024x1024.py',
          '../_base_/default_runtime.py', '../_base_/schedules/schedule_160k_adamw.py']
model = dict(decode_head=dict(num_classes=19), test_cfg=dict(mode='slide', crop_size=(1024, 1024), stride=(768, 768)))
evaluation = dict(interval=4000, metric='mIoU')
