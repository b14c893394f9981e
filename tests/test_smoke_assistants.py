from openai import OpenAI


def test_create_and_retrieve(client: OpenAI) -> None:
    created = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "code_interpreter"}])
    fetched = client.beta.assistants.retrieve(created.id)
    assert fetched == created
    assert fetched.tools[0].type == "code_interpreter"
