# SegNeXt-S, Pascal VOC 2012 + SBD aug, 80k iterations (paper suppl. Table 1).
_base_ = ['../_base_/models/segnext_small.py', '../_base_/datasets/pascal_voc12_aug.py', '../_base_/default_runtime.py',
          '../_base_/schedules/schedule_80k_adamw.py']
model = dict(decode_head=dict(num_classes=21), test_cfg=dict(mode='whole'))
