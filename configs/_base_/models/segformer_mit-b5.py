# SegFormer-B5: MiT-B5 (NVlabs mix_transformer.py class mit_b5) + all-MLP decoder, E=768.
_base_ = './segformer_mit.py'
model = dict(
    backbone=dict(
        embed_dims=[64, 128, 320, 512],
        depths=[3, 6, 40, 3],
        init_cfg=dict(type='Pretrained', checkpoint='pretrained/mit_b5.pth')),
    decode_head=dict(
        in_channels=[64, 128, 320, 512],
        decoder_params=dict(embed_dim=768)))
