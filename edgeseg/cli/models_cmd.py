"""edgeseg models"""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("models", help="list the registered backbones with parameter counts")
    p.add_argument("--classes", type=int, default=3)
    p.add_argument("--scale", type=int, default=2)
    p.add_argument("--head", default="pixelshuffle", help="SR head by registry name (pixelshuffle, jnet, jnet-authors)")
    p.set_defaults(func=run)


def run(args) -> int:
    from edgeseg.models import create_model, list_models

    print(f"{'model':<14}{'params':>10}{'SR head params':>16}   (classes={args.classes}, scale={args.scale}, head={args.head})")
    for name in list_models():
        m = create_model(name, 1, args.classes, args.scale, sr_head=True, head=args.head)
        print(f"{name:<14}{sum(p.numel() for p in m.parameters()):>10}{m.head_parameters():>16}")
    return 0
