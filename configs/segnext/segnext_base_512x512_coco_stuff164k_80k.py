# SegNeXt-B, COCO-Stuff 164k, 80k iterations (paper Table 9 / suppl. Table 1).
_base_ = ['../_base_/models/segnext_base.py', '../_base_/datasets/coco_stuff164k.py', '../_base_/default_runtime.py',
          '../_base_/schedules/schedule_80k_adamw.py']
model = dict(decode_head=dict(num_classes=171), test_cfg=dict(mode='whole'))
