"""The first thing a newcomer does: ``dig @127.0.0.1 -p 5353 www.example.com``."""

import dns.flags
import dns.rcode

from conftest import ask, rrset_texts


def test_www_example_com_answers_authoritatively(seawall):
    response = ask(seawall.addr, "www.example.com.", "A")
    assert response.rcode() == dns.rcode.NOERROR
    assert response.flags & dns.flags.AA
    assert rrset_texts(response.answer) == {"www.example.com. 3600 A 192.0.2.80"}
