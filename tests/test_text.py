from vidcap.text import clean_caption


def test_clean_caption_drops_controls_newlines_and_openings():
    assert clean_caption("The video shows a dog\x08 running.\nIt is   sunny.") == "A dog running. It is sunny."
    assert clean_caption("In this video, a cat sleeps.", strip_openings=False) == "In this video, a cat sleeps."
    assert clean_caption("The video shows") == "The video shows"
