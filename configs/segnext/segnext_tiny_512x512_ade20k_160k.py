# SegNeXt-T, ADE20K (official local_configs/segnext/tiny/segnext.tiny.512x512.ade.160k.py).
_base_ = ['../_base_/models/segnext_tiny.py', '../_base_/datasets/ade20k.py', '../_base_/default_runtime.py',
          '../_base_/schedules/schedule_160k_adamw.py']
model = dict(decode_head=dict(num_classes=150), test_cfg=dict(mode='whole'))
