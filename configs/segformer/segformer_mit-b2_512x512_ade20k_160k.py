# SegFormer-B2, ADE20K 512x512 (NVlabs local_configs/segformer/B2/segformer.b2.512x512.ade.160k.py).
_base_ = ['../_base_/models/segformer_mit-b2.py', '../_base_/datasets/ade20k.py', '../_base_/default_runtime.py',
          '../_base_/schedules/schedule_160k_adamw.py']
model = dict(decode_head=dict(num_classes=150), test_cfg=dict(mode='whole'))
evaluation = dict(interval=16000, metric='mIoU')
