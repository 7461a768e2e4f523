"""The overview shows the county's case rates beside its three-no figures, and still shows the
figures when the cases service does not answer."""

from services.console.main import create_app
from tests.support.app import serve
from tests.support.console import new_key, sign_in
from tests.support.processes import free_port

COUNTY = "340722000000"


async def test_the_overview_shows_the_three_no_figures_while_the_cases_service_is_down(
    console_stack, clock, db
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    app = create_app(console_stack.console_settings(cases_url=nobody), clock=clock)
    async with serve(app, "http://console") as client:
        await sign_in(client, await new_key(db))
        page = await client.get(f"/overview?unit={COUNTY}")

    assert page.status_code == 200
    assert "三无创建情况（对照目标）" in page.text
    assert "信访事项服务暂时无法访问" in page.text
