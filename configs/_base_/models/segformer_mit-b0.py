# SegFormer-B0: MiT-B0 (NVlabs mix_transformer.py class mit_b0) + all-MLP decoder, E=256.
_base_ = './segformer_mit.py'
model = dict(
    backbone=dict(
        embed_dims=[32, 64, 160, 256],
        depths=[2, 2, 2, 2],
        init_cfg=dict(type='Pretrained', checkpoint='pretrained/mit_b0.pth')),
    decode_head=dict(
        in_channels=[32, 64, 160, 256],
        decoder_params=dict(embed_dim=256)))
