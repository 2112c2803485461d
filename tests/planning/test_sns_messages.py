"""What makes an SNS message trustworthy, before any certificate is fetched."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from prefect_encord.planning.sns_messages import is_sns_message, is_sns_url, string_to_sign, unverifiable

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)
MESSAGE = {
    "Type": "Notification", "MessageId": "m-1", "TopicArn": "arn:aws:sns:eu-west-1:1:cams", "Subject": "s3",
    "Message": "{}", "Timestamp": "2026-12-07T11:59:00.000Z", "SignatureVersion": "1", "Signature": "c2ln",
    "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem",
    "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
}  # fmt: skip


def test_the_signed_string_holds_the_signed_fields_in_sns_order() -> None:
    assert string_to_sign(MESSAGE) == (
        b"Message\n{}\nMessageId\nm-1\nSubject\ns3\nTimestamp\n2026-12-07T11:59:00.000Z\n"
        b"TopicArn\narn:aws:sns:eu-west-1:1:cams\nType\nNotification\n"
    )
    without_subject = {key: value for key, value in MESSAGE.items() if key != "Subject"}
    assert b"Subject" not in string_to_sign(without_subject)


def test_what_cannot_be_trusted_is_named() -> None:
    assert unverifiable(MESSAGE, NOW) is None
    assert "a replay" in str(unverifiable(MESSAGE, NOW + timedelta(hours=2)))
    assert "not Amazon SNS's" in str(unverifiable({**MESSAGE, "SigningCertURL": "https://sns.evil.com/x.pem"}, NOW))
    assert "not Amazon SNS's" in str(
        unverifiable({**MESSAGE, "SigningCertURL": "http://sns.us-east-1.amazonaws.com/x.pem"}, NOW)
    )
    assert "SignatureVersion '3'" in str(unverifiable({**MESSAGE, "SignatureVersion": "3"}, NOW))
    assert "TopicArn, Signature missing" in str(
        unverifiable({k: v for k, v in MESSAGE.items() if k not in ("TopicArn", "Signature")}, NOW)
    )


def test_sns_envelopes_and_hosts_are_told_apart() -> None:
    assert is_sns_message(MESSAGE) and not is_sns_message({"Records": []}) and not is_sns_message([])
    assert is_sns_url("https://sns.us-east-1.amazonaws.com/confirm") and is_sns_url(
        "https://sns.cn-north-1.amazonaws.com.cn/x"
    )
    assert not is_sns_url("https://sns.us-east-1.amazonaws.com.evil.net/x")
    assert not is_sns_url("https://sns.us-east-1.amazonaws.com:8443/x")
