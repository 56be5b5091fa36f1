# SegNeXt-T, Pascal Context (59 classes), 480x480, 80k iterations (paper Table 12 / suppl. Table 1).
_base_ = ['../_base_/models/segnext_tiny.py', '../_base_/datasets/pascal_context_59.py', '../_base_/default_runtime.py',
          '../_base_/schedules/schedule_80k_adamw.py']
model = dict(decode_head=dict(num_classes=59), test_cfg=dict(mode='slide', crop_size=(480, 480), stride=(320, 320)))
