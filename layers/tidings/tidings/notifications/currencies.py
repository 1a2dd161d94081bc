"""The currencies Stripe charges cards in, and its minimum charge per currency.

From Stripe's "Supported currencies" page (docs.stripe.com/currencies: presentment currencies for card
payments, and "Minimum and maximum charge amounts"). Amounts are in the currency's minor unit, as the
API takes them. A currency without a published minimum is checked by Stripe itself against the
settlement currency's minimum (converted at the day's rate), which no static table can know.

Three-decimal currencies (bhd, jod, kwd, omr, tnd) are left out on purpose: Stripe wants their last digit
to be 0 and does not accept them for every payment method.
"""

from __future__ import annotations

_STRIPE_CURRENCY_CODES = """
    usd aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bif bmd bnd bob brl bsd bwp byn bzd cad
    cdf chf clp cny cop crc cve czk djf dkk dop dzd egp etb eur fjd fkp gbp gel gip gmd gnf gtq gyd hkd
    hnl htg huf idr ils inr isk jmd jpy kes kgs khr kmf krw kyd kzt lak lbp lkr lrd lsl mad mdl mga mkd
    mmk mnt mop mur mvr mwk mxn myr mzn nad ngn nio nok npr nzd pab pen pgk php pkr pln pyg qar ron rsd
    rub rwf sar sbd scr sek sgd shp sle sos srd std szl thb tjs top try ttd twd tzs uah ugx uyu uzs vnd
    vuv wst xaf xcd xof xpf yer zar zmw
"""
#: Lower-case ISO 4217 codes Stripe accepts for card charges.
STRIPE_CURRENCIES = frozenset(_STRIPE_CURRENCY_CODES.split())

#: Stripe's published minimum charge, in the currency's minor unit (usd 50 is $0.50; jpy, a
#: zero-decimal currency, counts whole yen).
STRIPE_MINIMUM_AMOUNTS: dict[str, int] = {
    "usd": 50,
    "aed": 200,
    "aud": 50,
    "bgn": 100,
    "brl": 50,
    "cad": 50,
    "chf": 50,
    "czk": 1500,
    "dkk": 250,
    "eur": 50,
    "gbp": 30,
    "hkd": 400,
    "huf": 17500,
    "inr": 50,
    "jpy": 50,
    "mxn": 1000,
    "myr": 200,
    "nok": 300,
    "nzd": 50,
    "pln": 200,
    "ron": 200,
    "sek": 300,
    "sgd": 50,
    "thb": 1000,
}

#: Stripe's maximum for any currency: eight digits in the minor unit.
STRIPE_MAXIMUM_AMOUNT = 99_999_999


def minimum_amount(currency: str) -> int:
    """The smallest amount Stripe charges in ``currency`` (1 where it publishes no minimum)."""
    return STRIPE_MINIMUM_AMOUNTS.get(currency, 1)
