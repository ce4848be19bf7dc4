"""The failover drill's own arithmetic: gaps, VIP detection and response parsing."""

import pytest

from tests.integration.vip_failover_drill import holds_address, longest_gap, parse_backend


def test_longest_gap_counts_from_the_last_success_before_the_window():
    # Last good answer at 9.0, failure at 10.0, the client answers again at 12.5.
    assert longest_gap([8.9, 9.0, 12.5, 12.6], start=10.0, end=12.6) == pytest.approx(3.5)


def test_longest_gap_of_a_client_that_never_recovers_is_the_whole_window():
    assert longest_gap([1.0], start=2.0, end=7.0) == pytest.approx(6.0)


def test_longest_gap_without_any_success_starts_at_the_window():
    assert longest_gap([], start=2.0, end=7.0) == pytest.approx(5.0)


def test_longest_gap_of_a_steady_client_is_its_request_period():
    times = [10.0 + i * 0.02 for i in range(100)]
    assert longest_gap(times, start=10.0, end=times[-1]) == pytest.approx(0.02)


def test_longest_gap_refuses_a_reversed_window():
    with pytest.raises(ValueError, match=r"end=1\.0 is before start=2\.0"):
        longest_gap([], start=2.0, end=1.0)


IP_ADDR = (
    "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever\n"
    "55: eth0    inet 172.30.21.11/24 brd 172.30.21.255 scope global eth0\\       valid_lft\n"
    "55: eth0    inet 172.30.21.10/32 scope global eth0\\       valid_lft forever\n"
)


def test_holds_address_finds_the_vip():
    assert holds_address(IP_ADDR, "172.30.21.10")


def test_holds_address_does_not_match_a_longer_address():
    assert not holds_address(IP_ADDR, "172.30.21.1")
    assert not holds_address(IP_ADDR.replace("172.30.21.10/32", "172.30.21.100/32"), "172.30.21.10")


def test_parse_backend_reads_the_name():
    response = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nvipcp2\n"
    assert parse_backend(response) == "vipcp2"


@pytest.mark.parametrize(
    "response",
    [b"", b"HTTP/1.0 503 Service Unavailable\r\n\r\nvipcp2\n", b"HTTP/1.0 200 OK\r\n\r\n"],
)
def test_parse_backend_rejects_what_is_not_an_answer(response):
    assert parse_backend(response) is None
