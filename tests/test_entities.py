import pytest

from intents.entities import EntityExtractor, is_affirmative, is_negative

X = EntityExtractor("SD-")


@pytest.mark.parametrize("text", ["where is SD-10492", "order #10492 pls", "my order 10492?", "sd10492",
                                  "SD 10492 hasn't arrived", "order number: 10492", "Order No. 10492"])
def test_order_number_variants_normalise(text):
    assert X.extract(text).order_ids == ("SD-10492",)


def test_no_order_number_in_plain_numbers_or_short_ids():
    assert X.extract("I bought 2 pairs for 89 dollars").order_ids == ()
    assert X.extract("SD-123").order_ids == ()
    assert X.extract("SD-1234567").order_ids == ()


def test_email_zip_phone():
    e = X.extract("it's SD-10492, email Ada.Park@Example.com, zip 94110, call +1 415 555 0100")
    assert e.order_ids == ("SD-10492",)
    assert e.emails == ("ada.park@example.com",)
    assert e.zips == ("94110",)
    assert e.phones == ("+14155550100",)


def test_order_digits_are_not_a_zip():
    assert X.extract("order #10492").zips == ()


def test_custom_prefix():
    assert EntityExtractor("FF-").extract("ff 123456 please").order_ids == ("FF-123456",)


@pytest.mark.parametrize("text", ["yes", "Yes please!", "ok, go ahead", "yeah sure", "yes thanks"])
def test_affirmative(text):
    assert is_affirmative(text) and not is_negative(text)


@pytest.mark.parametrize("text", ["no", "no thanks", "nope.", "not now", "never mind"])
def test_negative(text):
    assert is_negative(text) and not is_affirmative(text)


@pytest.mark.parametrize("text", ["yes where is my order", "no, where is it", "thanks", "maybe"])
def test_neither(text):
    assert not is_affirmative(text) and not is_negative(text)


@pytest.mark.parametrize("chip", ["Yes, connect me", "yes please connect me", "ok, open a ticket"])
def test_the_handoff_offer_chips_are_answers(chip):
    assert is_affirmative(chip)
    assert is_negative("No, thanks")
