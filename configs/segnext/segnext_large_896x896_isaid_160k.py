# SegNeXt-L, iSAID, 896x896 patches, 160k iterations (paper Table 4 / suppl. Table 1).
_base_ = ['../_base_/models/segnext_large.py', '../_base_/datasets/isaid.py', '../_base_/default_runtime.py',
          '../_base_/schedules/schedule_160k_adamw.py']
model = dict(decode_head=dict(num_classes=16), test_cfg=dict(mode='whole'))
