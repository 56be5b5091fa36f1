# SegFormer-B5, ADE20K 640x640 (NVlabs local_configs/segformer/B5/segformer.b5.640x640.ade.160k.py; the paper's B5 row).
_base_ = ['../_base_/models/segformer_mit-b5.py', '../_base_/datasets/ade20k_640x640.py', '../_base_/default_runtime.py',
          '../_base_/schedules/schedule_160k_adamw.py']
model = dict(decode_head=dict(num_classes=150), test_cfg=dict(mode='whole'))
evaluation = dict(interval=16000, metric='mIoU')
