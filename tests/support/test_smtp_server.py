import pytest
from django.core.mail import send_mail

pytestmark = pytest.mark.integration


def test_the_test_smtp_server_records_what_django_sends(smtp_server):
    send_mail("Hello", "Body text", "from@example.org", ["reader@example.org"])
    [message] = smtp_server.handler.to("reader@example.org")
    assert message["Subject"] == "Hello"
    assert "Body text" in message.get_content()


def test_the_test_smtp_server_refuses_chosen_recipients(smtp_server):
    smtp_server.handler.rcpt_faults["gone@example.org"] = "550 5.1.1 No such user"
    with pytest.raises(Exception, match="No such user"):
        send_mail("Hello", "Body", "from@example.org", ["gone@example.org"])
    assert smtp_server.handler.recipients() == []
