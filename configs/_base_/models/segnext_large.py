# SegNeXt-L model (official local_configs/segnext/large/*.py; paper Table 2).
_base_ = './segnext_mscan.py'
model = dict(
    backbone=dict(
        embed_dims=[64, 128, 320, 512],
        depths=[3, 5, 27, 3],
        drop_path_rate=0.3,
        init_cfg=dict(type='Pretrained', checkpoint='pretrained/mscan_l.pth')),
    decode_head=dict(
        in_channels=[128, 320, 512],
        channels=1024,
        ham_channels=1024,
        ham_kwargs=dict(MD_R=64)))
