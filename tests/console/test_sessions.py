"""Sessions, CSRF, expiry, revocation and error pages, over HTTP against a console run
in-process (its clock in the test's hands) in front of the real services."""

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import sqlalchemy as sa

from services.console.main import create_app
from shared.access import service as access_service
from tests.support.app import bearer, serve
from tests.support.console import csrf_of, key_id, new_key, sessions_of, sign_in

# A village of 项铺镇 no other console test posts for.
VILLAGE = "340722102201"
# A village of 陈瑶湖镇 no other console test applies with.
APPLIED = "340722111201"


def session_cookie(response: httpx.Response) -> str:
    return next(
        c
        for c in response.headers.get_list("set-cookie")
        if c.split("=")[0] in ("sanwu_console", "__Host-sanwu_console")
    )


class TestSignIn:
    async def test_the_cookie_is_http_only_and_strict_and_the_key_stays_on_the_server(
        self, console, db
    ) -> None:
        key = await new_key(db)
        response = await sign_in(console, key)
        assert response.status_code == 303 and response.headers["location"] == "/overview"
        cookie = next(
            c for c in response.headers.get_list("set-cookie") if c.startswith("sanwu_console=")
        )
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        assert "Secure" not in cookie  # plain http
        token = console.cookies["sanwu_console"]
        [row] = await sessions_of(db, key_id(key))
        assert row["session_id"] != token
        assert key.encode() not in row["sealed_key"] and token not in str(row)
        page = await console.get("/overview")
        assert page.status_code == 200 and key not in page.text

    async def test_a_sealed_key_altered_in_the_table_opens_to_no_session(self, console, db) -> None:
        key = await new_key(db)
        await sign_in(console, key)
        async with db.engine.begin() as connection:
            await connection.execute(
                sa.text(
                    "UPDATE console.sessions SET sealed_key = "
                    "set_byte(sealed_key, 20, get_byte(sealed_key, 20) # 1) WHERE key_id = :k"
                ),
                {"k": key_id(key)},
            )

        page = await console.get("/overview")

        assert page.status_code == 303 and page.headers["location"] == "/signin?notice=expired"

    async def test_behind_https_the_cookie_is_secure_and_host_only(
        self, console_stack, clock, db
    ) -> None:
        app = create_app(console_stack.console_settings(), clock=clock)
        async with serve(app, "https://console") as client:
            response = await sign_in(client, await new_key(db))
            page = await client.get("/overview")  # the browser sends the cookie back
        assert response.status_code == 303 and page.status_code == 200
        cookie = session_cookie(response)
        assert cookie.startswith("__Host-sanwu_console=")
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
        assert {"secure", "path", "httponly", "samesite"} <= attributes
        assert "domain" not in attributes and "Path=/;" in cookie + ";"

    async def test_in_production_the_cookie_is_secure_whatever_the_scheme(
        self, console_stack, clock, db
    ) -> None:
        settings = console_stack.console_settings(
            environment="production", petitioner_hash_secret="p" * 32
        )
        async with serve(create_app(settings, clock=clock), "http://console") as client:
            form = await client.get("/signin")
        # Plain HTTP reaching a production console is a proxy's doing: the browser is on HTTPS.
        cookie = form.headers["set-cookie"]
        assert cookie.startswith("__Host-sanwu_console_signin=") and "Secure" in cookie

    async def test_a_bad_key_is_refused_and_no_session_is_stored(self, console, db) -> None:
        key = await new_key(db)
        wrong = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
        response = await sign_in(console, wrong)
        assert response.status_code == 401
        assert "密钥无效、已吊销或已过期" in response.text
        assert await sessions_of(db, key_id(key)) == []
        assert "sanwu_console" not in console.cookies

    async def test_a_sign_in_without_the_form_token_is_refused(self, console, db) -> None:
        key = await new_key(db)
        await console.get("/signin")
        response = await console.post("/signin", data={"csrf_token": "forged", "key": key})
        assert response.status_code == 403 and "表单已失效" in response.text
        assert await sessions_of(db, key_id(key)) == []

    async def test_a_page_without_a_session_goes_to_the_sign_in_page(self, console) -> None:
        response = await console.get("/overview")
        assert response.status_code == 303 and response.headers["location"] == "/signin"

    async def test_signing_out_ends_the_session(self, console, db) -> None:
        key = await new_key(db)
        await sign_in(console, key)
        token = await csrf_of(console, "/overview")
        response = await console.post("/signout", data={"csrf_token": token})
        assert response.status_code == 303
        assert await sessions_of(db, key_id(key)) == []
        assert (await console.get("/overview")).status_code == 303

    async def test_signing_out_needs_the_form_token(self, console, db) -> None:
        key = await new_key(db)
        await sign_in(console, key)
        response = await console.post("/signout", data={"csrf_token": "forged"})
        assert response.status_code == 403
        assert len(await sessions_of(db, key_id(key))) == 1


class TestExpiry:
    async def test_a_session_ends_after_its_lifetime(self, console, clock, db) -> None:
        key = await new_key(db)
        await sign_in(console, key)
        for _ in range(20):  # seen every 25 minutes: never idle, still ends after 8 hours
            clock.now += timedelta(minutes=25)
            response = await console.get("/overview")
            if response.status_code != 200:
                break
        assert response.status_code == 303
        assert response.headers["location"] == "/signin?notice=expired"
        assert clock.now - datetime.now(UTC) >= timedelta(hours=8) - timedelta(minutes=25)
        assert await sessions_of(db, key_id(key)) == []

    async def test_a_session_ends_after_half_an_hour_without_a_page(
        self, console, clock, db
    ) -> None:
        key = await new_key(db)
        await sign_in(console, key)
        clock.now += timedelta(minutes=29)
        assert (await console.get("/overview")).status_code == 200
        clock.now += timedelta(minutes=31)
        response = await console.get("/overview")
        assert response.headers["location"] == "/signin?notice=expired"
        assert await sessions_of(db, key_id(key)) == []


class TestRevocation:
    async def test_revoking_a_key_ends_every_session_of_it_at_once(
        self, console_stack, console, clock, db
    ) -> None:
        key = await new_key(db)
        await sign_in(console, key)
        app = create_app(console_stack.console_settings(), clock=clock)
        async with serve(app, "http://console") as other:
            await sign_in(other, key)
            assert len(await sessions_of(db, key_id(key))) == 2
            async with db.engine.begin() as connection:
                await access_service.revoke(connection, key_id(key))
            response = await console.get("/overview")
            assert response.status_code == 303
            assert response.headers["location"] == "/signin?notice=revoked"
            assert await sessions_of(db, key_id(key)) == []
            assert (await other.get("/overview")).status_code == 303
        page = await console.get("/signin?notice=revoked")
        assert "密钥已被吊销或已过期" in page.text


class TestRecordForm:
    def visit(self, event_id: str, headcount: str) -> dict[str, str]:
        return {
            "type": "petition_visit",
            "event_id": event_id,
            "unit_code": VILLAGE,
            "occurred_at": "2018-07-03T09:30",
            "destination_level": "county",
            "headcount": headcount,
        }

    async def stored(self, console_stack, event_id: str) -> int:
        async with httpx.AsyncClient(base_url=console_stack.urls["intake"]) as client:
            response = await client.get(
                f"/v1/events/{event_id}", headers=bearer(console_stack.keys["county_desk"])
            )
        return response.status_code

    async def test_a_form_without_the_session_token_records_nothing(
        self, console_stack, console
    ) -> None:
        await sign_in(console, console_stack.keys["county_desk"])
        event_id = str(uuid.uuid4())
        form = self.visit(event_id, "2") | {"csrf_token": "forged"}
        response = await console.post("/record", data=form)
        assert response.status_code == 403 and "表单已失效" in response.text
        assert await self.stored(console_stack, event_id) == 404

    async def test_a_refused_field_is_named_in_chinese_and_nothing_is_stored(
        self, console_stack, console
    ) -> None:
        await sign_in(console, console_stack.keys["county_desk"])
        event_id = str(uuid.uuid4())
        form = self.visit(event_id, "0") | {"csrf_token": await csrf_of(console)}
        form["destination_level"] = "village"
        response = await console.post("/record", data=form)
        assert response.status_code == 422
        assert '<p class="field-error" id="f-headcount-error">不能小于 1</p>' in response.text
        assert 'id="f-destination_level-error">请从列表中选择' not in response.text
        assert f'name="event_id" value="{event_id}"' in response.text  # kept for the retry
        assert await self.stored(console_stack, event_id) == 404

    async def test_a_unit_outside_the_key_is_named_beside_its_field(
        self, console_stack, console
    ) -> None:
        await sign_in(console, console_stack.keys["sibling_desk"])
        event_id = str(uuid.uuid4())
        form = self.visit(event_id, "2") | {"csrf_token": await csrf_of(console)}
        response = await console.post("/record", data=form)
        assert response.status_code == 403
        assert "该单位不在您的密钥范围内" in response.text
        assert await self.stored(console_stack, event_id) == 404

    async def test_a_number_in_digits_other_than_ascii_is_refused_by_field(
        self, console_stack, console
    ) -> None:
        await sign_in(console, console_stack.keys["county_desk"])
        for headcount in ("²", "٣", "-²"):  # str.isdigit() takes each for digits
            event_id = str(uuid.uuid4())
            form = self.visit(event_id, headcount) | {"csrf_token": await csrf_of(console)}
            response = await console.post("/record", data=form)
            assert response.status_code == 422, (headcount, response.status_code)
            assert 'id="f-headcount-error"' in response.text
            assert await self.stored(console_stack, event_id) == 404

    async def test_the_same_form_sent_twice_records_once(self, console_stack, console) -> None:
        await sign_in(console, console_stack.keys["county_desk"])
        event_id = str(uuid.uuid4())
        form = self.visit(event_id, "2") | {"csrf_token": await csrf_of(console)}
        first = await console.post("/record", data=form)
        second = await console.post("/record", data=form)
        assert first.status_code == second.status_code == 303
        assert first.headers["location"] == second.headers["location"] == f"/record/{event_id}"
        assert await self.stored(console_stack, event_id) == 200
        form["headcount"] = "3"  # the same form, changed after it went through
        changed = await console.post("/record", data=form)
        assert changed.status_code == 409 and "已经登记过另一份内容" in changed.text


class TestErrorPages:
    async def test_a_service_that_is_down_gets_a_page_not_a_trace(
        self, console_stack, clock
    ) -> None:
        from tests.support.processes import free_port

        settings = console_stack.console_settings(reporting_url=f"http://127.0.0.1:{free_port()}")
        async with serve(create_app(settings, clock=clock), "http://console") as client:
            await sign_in(client, console_stack.keys["county_reader"])
            response = await client.get("/overview")
        assert response.status_code == 503
        assert "服务暂不可用" in response.text and "统计服务" in response.text
        assert "Traceback" not in response.text

    async def test_an_unknown_period_gets_a_page(self, console_stack, console) -> None:
        await sign_in(console, console_stack.keys["county_reader"])
        response = await console.get("/overview?period=1999")
        assert response.status_code == 404 and "没有找到" in response.text

    async def test_a_malformed_unit_code_gets_a_page(self, console_stack, console) -> None:
        await sign_in(console, console_stack.keys["county_reader"])
        response = await console.get("/units/12ab")
        assert response.status_code == 400 and "参数有误" in response.text

    async def test_an_unknown_page_gets_a_page(self, console_stack, console) -> None:
        response = await console.get("/nowhere")
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("text/html")

    async def test_a_key_out_of_scope_gets_a_page(self, console_stack, console) -> None:
        await sign_in(console, console_stack.keys["township_reader"])
        response = await console.get("/overview?unit=340722000000&period=2018")
        assert response.status_code == 403 and "无权查看" in response.text


async def test_every_page_tells_the_browser_to_run_no_script_and_be_framed_by_no_one(
    console: httpx.AsyncClient,
) -> None:
    for path in ("/signin", "/static/console.css", "/no-such-page"):
        response = await console.get(path)
        policy = response.headers.get("content-security-policy", "")
        assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy, path
        assert "script-src" not in policy  # no script may run: default-src 'none' covers it
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"


async def test_a_version_in_digits_other_than_ascii_acts_on_nothing(console_stack, console) -> None:
    county = console_stack.keys["county_bureau"]
    async with httpx.AsyncClient(base_url=console_stack.urls["applications"]) as client:
        unit = {"code": APPLIED, "self_evaluation": "全年无越级上访"}
        created = await client.post(
            "/v1/applications", json={"period": "2018", "units": [unit]}, headers=bearer(county)
        )
    assert created.status_code == 201, created.text
    application_id = created.json()["application_id"]
    await sign_in(console, county)
    page = f"/applications/{application_id}"
    token = await csrf_of(console, page)

    submitted = await console.post(f"{page}/submit", data={"csrf_token": token, "version": "²"})

    assert submitted.status_code == 412 and "已经更新过" in submitted.text
    assert 'id="application-state" data-state="draft"' in submitted.text  # not submitted


async def test_downloads_are_kept_by_no_cache(console_stack, console) -> None:
    await sign_in(console, console_stack.keys["county_reader"])

    response = await console.get("/eligible/download?period=2018&level=village&format=csv")

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-disposition"].startswith("attachment")
