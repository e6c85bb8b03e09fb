import numpy as np
from PIL import Image

from hfstream.apps.cli import main


def test_encode_decode_round_trip(tmp_path, small_image, capsys):
    src, hfs, out = tmp_path / "in.png", tmp_path / "x.hfs", tmp_path / "out.png"
    Image.fromarray(small_image).save(src)
    assert main(["encode", str(src), str(hfs), "--schedule", "1_4"]) == 0
    assert "bpp" in capsys.readouterr().out
    assert main(["decode", str(hfs), str(out), "--steps", "2"]) == 0
    assert np.asarray(Image.open(out)).shape == small_image.shape


def test_bad_files_exit_2_with_one_line(tmp_path, small_image, capsys):
    src, hfs = tmp_path / "in.png", tmp_path / "x.hfs"
    Image.fromarray(small_image).save(src)
    main(["encode", str(src), str(hfs)])
    capsys.readouterr()
    hfs.write_bytes(hfs.read_bytes()[:40])
    assert main(["decode", str(hfs), str(tmp_path / "o.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "truncated" in err and "Traceback" not in err
    assert main(["decode", str(tmp_path / "missing.hfs"), str(tmp_path / "o.png")]) == 2
    assert "No such file" in capsys.readouterr().err
    (tmp_path / "junk.png").write_bytes(b"not an image")
    assert main(["encode", str(tmp_path / "junk.png"), str(hfs)]) == 2
    assert "error" in capsys.readouterr().err
    assert main(["encode", str(src), str(hfs), "--schedule", "1_3"]) == 2
    assert 'Invalid schedule "1_3"' in capsys.readouterr().err


def test_send_and_recv_over_udp(tmp_path, capsys):
    """The two commands in two threads (each runs its own event loop), UDP on loopback."""
    import socket
    import threading

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "recv"
    result = {}

    def receive():
        result["rc"] = main(
            [
                "recv",
                "--listen",
                f"127.0.0.1:{port}",
                "--frames",
                "2",
                "--fps",
                "5",
                "--timeout",
                "20",
                "--out",
                str(out),
            ]
        )

    t = threading.Thread(target=receive)
    t.start()
    import time

    time.sleep(1.0)
    assert (
        main(["send", "pattern", "--frames", "2", "--fps", "5", "--to", f"127.0.0.1:{port}"]) == 0
    )
    t.join(60)
    assert result["rc"] == 0
    assert (out / "received.mp4").exists()
    rows = (out / "frames.csv").read_text().splitlines()
    assert rows[0].startswith("frame,stage") and len(rows) == 3


def test_bad_address(capsys):
    assert main(["send", "pattern", "--to", "nowhere"]) == 2
    assert 'Invalid address "nowhere"' in capsys.readouterr().err
