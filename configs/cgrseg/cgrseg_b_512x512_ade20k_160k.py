# CGRSeg-B, ADE20K 512x512 (nizhenliang/CGRSeg local_configs/cgrseg/cgrseg-b_ade20k_160k.py).
_base_ = ['../_base_/models/cgrseg_b.py', '../_base_/datasets/ade20k_pad32.py', '../_base_/default_runtime.py',
          '../_base_/schedules/schedule_160k_adamw.py']
model = dict(decode_head=dict(num_classes=150), test_cfg=dict(mode='whole'))
optimizer = dict(lr=0.00012, paramwise_cfg=dict(_delete_=True, custom_keys={
    'absolute_pos_embed': dict(decay_mult=0.), 'head': dict(lr_mult=10.), 'norm': dict(decay_mult=0.)}))
evaluation = dict(interval=4000, metric='mIoU')
