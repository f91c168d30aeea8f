# One image for the API and the workers; the command chooses the role.
FROM debian:bookworm-slim

ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PATH=/opt/venv/bin:$PATH

# Debian's Python 3.11 is the one LibreOffice's UNO bindings (python3-uno) load into.
COPY scripts/install-system-packages /tmp/install-system-packages
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        python3 python3-venv util-linux \
    && /tmp/install-system-packages \
    && rm -rf /var/lib/apt/lists/* /tmp/install-system-packages

WORKDIR /srv/worklane
COPY pyproject.toml README.md alembic.ini worker.py ./
COPY app ./app
RUN python3 -m venv /opt/venv && pip install --no-cache-dir .

RUN useradd --system --create-home --home-dir /var/lib/worklane worklane \
    && mkdir -p /var/lib/worklane/data && chown -R worklane /var/lib/worklane
USER worklane
ENV WORKLANE_DATA_DIR=/var/lib/worklane/data

EXPOSE 8000
CMD ["uvicorn", "app.api.main:create_app", "--factory", "--host", "0.0.0.0", "--port", "8000"]
